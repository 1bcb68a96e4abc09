#!/bin/sh
# Runs once per removed container. The invocation (a CloudEvent
# container.remove / container.destroy, data: id, name, image, exit_code)
# arrives as JSON on stdin; what is printed on stdout is the result; lines
# on stderr are the function's log. Only shell builtins are used, so the
# script needs nothing but /bin/sh. A failure is a non-zero exit: tine
# retries the event, and the alert function pages.
event=''
while IFS= read -r line || [ -n "$line" ]; do
  event="$event$line"
done
rest=${event#*\"name\":\"}
if [ "$rest" = "$event" ]; then
  echo "container event without a container name: $event" >&2
  exit 1
fi
name=${rest%%\"*}
rest=${event#*\"id\":\"}
id=${rest%%\"*}
# The place for the real work: release the container's volume, drop its DNS
# name, remove its firewall rules...
echo "cleaning up after container $name" >&2
printf '{"cleaned":"%s","id":"%s"}\n' "$name" "$id"
