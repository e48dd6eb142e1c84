def Z10500(Z10500K1):
    try:
        while True:
            pass
    finally:
        while True:
            pass
