-- W3: LIMIT without ORDER BY on MariaDB's part (only the row count is checked)
-- compare: rowcount
select p_partkey, p_name, p_mfgr, p_brand, p_type, p_size, p_container, p_retailprice, p_comment
from {part}
limit 10
