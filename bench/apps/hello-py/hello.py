def hi(req, ctx):
    return "hello, world\n"
