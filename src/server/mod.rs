//! Protocol front ends. One file per protocol.

pub mod cancel;
pub mod copy_binary;
pub mod encode;
pub mod flight_sql;
pub mod guard;
pub mod http;
pub mod ops;
pub mod params;
pub mod postgres;
pub mod startup;
pub mod tls;
pub mod values;
