def Z10500(Z10500K1):
    while True:
        print('flood ' * 10923)
