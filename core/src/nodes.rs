//! Device nodes each GPU and MIG device needs (to be written).
