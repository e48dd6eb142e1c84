def Z10500(Z10500K1):
    print('a little noise')
    return 'done'
