-- W3: selective filter on MariaDB's customer
select c_custkey, c_name, c_acctbal
from {customer}
where c_mktsegment = 'BUILDING' and c_acctbal > 9900.00
order by c_custkey
