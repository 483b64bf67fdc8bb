-- W1: full scan of lineitem, all 16 columns, read by tautan in ONE part (no page ranges):
-- the baseline for the parallel scan of w1_lineitem_all (2 parts by default).
-- only: tautan
-- tautan-setting: SET tautan.scan_parts = 1
select l_orderkey, l_partkey, l_suppkey, l_linenumber, l_quantity, l_extendedprice, l_discount, l_tax,
       l_returnflag, l_linestatus, l_shipdate, l_commitdate, l_receiptdate, l_shipinstruct, l_shipmode, l_comment
from {lineitem}
