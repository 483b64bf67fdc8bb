-- W1: full scan of MariaDB's largest table by rows, part, all 9 columns
select p_partkey, p_name, p_mfgr, p_brand, p_type, p_size, p_container, p_retailprice, p_comment
from {part}
