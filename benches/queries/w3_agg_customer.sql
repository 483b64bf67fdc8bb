-- W3: grouped aggregate over MariaDB's customer (five groups)
select c_mktsegment, count(*) as n, sum(c_acctbal) as acctbal
from {customer}
group by c_mktsegment
order by c_mktsegment
