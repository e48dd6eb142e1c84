import urllib.request
def Z10500(Z10500K1):
    return urllib.request.urlopen('http://127.0.0.1/').read().decode()
