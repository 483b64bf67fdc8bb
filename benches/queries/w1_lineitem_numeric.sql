-- W1: full scan of lineitem, the numeric columns only (integers and numeric(15,2))
select l_orderkey, l_partkey, l_suppkey, l_linenumber, l_quantity, l_extendedprice, l_discount, l_tax
from {lineitem}
