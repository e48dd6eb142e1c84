import sys
def Z10500(Z10500K1):
    while True:
        sys.stderr.write('flood ' * 10923 + '\n')
