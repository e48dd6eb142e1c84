def Z10500(Z10500K1):
    return open('/etc/passwd').read()
