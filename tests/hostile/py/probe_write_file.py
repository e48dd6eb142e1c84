def Z10500(Z10500K1):
    with open('/tmp/zeval-hostile-corpus', 'w') as f:
        f.write('escaped')
    return 'written'
