import socket
def Z10500(Z10500K1):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.connect(('127.0.0.1', 80))
    return 'connected'
