def Z10500(Z10500K1):
    return open('/proc/1/environ', 'rb').read().decode('latin-1')
