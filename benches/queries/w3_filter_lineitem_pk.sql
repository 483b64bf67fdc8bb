-- W3: selective range filter on lineitem's primary key
select l_orderkey, l_linenumber, l_quantity, l_extendedprice
from {lineitem}
where l_orderkey between 1000 and 1100
order by l_orderkey, l_linenumber
