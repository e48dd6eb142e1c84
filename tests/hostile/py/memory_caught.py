def Z10500(Z10500K1):
    try:
        keep = []
        while True:
            keep.append(bytearray(1 << 20))
    except MemoryError:
        return 'caught MemoryError'
