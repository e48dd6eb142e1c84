def Z10500(Z10500K1):
    global leaked
    try:
        return 'leaked: ' + leaked
    except NameError:
        leaked = 'from the first call'
        return 'fresh'
