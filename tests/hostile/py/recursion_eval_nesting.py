def Z10500(Z10500K1):
    return str(eval('(' * 100000 + '1' + ')' * 100000))
