"""The Python side: composes the greeting, with the Node styler's help."""
import tine


def compose(event, ctx):
    styled, _ = tine.invoke("style", {"name": event["name"]})
    tine.log("composing for", event["name"])
    return {"text": "%s, %s" % (styled["word"], event["name"]), "visits": styled["visits"],
            "by": [ctx["function"], styled["by"]]}
