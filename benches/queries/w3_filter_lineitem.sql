-- W3: selective filter on non-indexed lineitem columns (about 0.03% of rows)
select l_orderkey, l_linenumber, l_quantity, l_extendedprice
from {lineitem}
where l_shipdate = date '1995-06-17' and l_discount = 0.05
order by l_orderkey, l_linenumber
