-- W1: full scan of lineitem, 4 columns
select l_orderkey, l_partkey, l_quantity, l_shipdate
from {lineitem}
