-- W3: count(*) of lineitem
select count(*) as n from {lineitem}
