exports.hi = () => 'hello, world\n';
