import json
def Z10500(Z10500K1):
    return type(json.loads('[' * 1000000 + ']' * 1000000)).__name__
