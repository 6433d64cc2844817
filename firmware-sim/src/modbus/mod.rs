//! Modbus device emulators on tokio-modbus servers (TCP and RTU).
