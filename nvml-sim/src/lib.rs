//! NVML simulator (to be written).
