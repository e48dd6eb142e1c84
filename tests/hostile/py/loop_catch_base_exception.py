def Z10500(Z10500K1):
    while True:
        try:
            while True:
                pass
        except BaseException:
            pass
