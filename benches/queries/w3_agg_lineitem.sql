-- W3: grouped aggregate over all of lineitem (four groups)
select l_returnflag, l_linestatus, count(*) as n, sum(l_quantity) as qty, sum(l_extendedprice) as price
from {lineitem}
group by l_returnflag, l_linestatus
order by l_returnflag, l_linestatus
