-- W1: full scan of MariaDB's customer, all 8 columns
select c_custkey, c_name, c_address, c_nationkey, c_phone, c_acctbal, c_mktsegment, c_comment
from {customer}
