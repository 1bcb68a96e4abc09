"""The Python side: composes the greeting, with the Lua counter's help."""
import tine


def compose(event, ctx):
    counted, _ = tine.invoke("count", {"name": event["name"]})
    tine.log("composing for", event["name"])
    return {"text": "hello, %s" % event["name"], "visits": counted["n"], "by": ctx["function"]}
