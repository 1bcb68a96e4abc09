#!/bin/sh
# The CGI peer's handler: one fork + exec of /bin/sh per request (cgi-server
# has already written the status line; this prints the header lines and body).
printf 'Content-Type: text/plain; charset=utf-8\r\nContent-Length: 13\r\n\r\nhello, world\n'
