// Tries to open a TCP connection to the evaluator's own host and to listen on a port.
use std::net::{TcpListener, TcpStream, UdpSocket};

fn Z10500(_Z10500K1: &str) -> String {
    let connect = match TcpStream::connect("127.0.0.1:80") {
        Ok(_) => "connected".to_owned(),
        Err(error) => format!("connect failed: {error}"),
    };
    let listen = match TcpListener::bind("127.0.0.1:0") {
        Ok(_) => "listening".to_owned(),
        Err(error) => format!("bind failed: {error}"),
    };
    let udp = match UdpSocket::bind("0.0.0.0:0") {
        Ok(_) => "udp bound".to_owned(),
        Err(error) => format!("udp failed: {error}"),
    };
    format!("{connect}; {listen}; {udp}")
}
