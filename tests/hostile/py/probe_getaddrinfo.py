import socket
def Z10500(Z10500K1):
    return repr(socket.getaddrinfo('localhost', 80))
