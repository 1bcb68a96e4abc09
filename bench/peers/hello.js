// The workerd peer: the same hello answer as functions-examples/hello.
export default {
  fetch() {
    return new Response("hello, world\n", { headers: { "content-type": "text/plain; charset=utf-8" } });
  },
};
