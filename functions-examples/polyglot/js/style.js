// The Node side: picks the word, with the Lua counter's help.
const tine = require('tine');

exports.style = (event, ctx) => {
  const [counted] = tine.invoke('count', { name: event.name });
  return { word: counted.n > 1 ? 'welcome back' : 'hello', visits: counted.n, by: ctx.function };
};
