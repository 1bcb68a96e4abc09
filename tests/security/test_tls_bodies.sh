#!/usr/bin/env bash
# test_http_bodies.sh over HTTPS: large bodies read by tine over HTTP/1.1 on
# TLS, the node's budget of them and its RSS bound, HTTP/2 streams by ALPN
# refused over 64 KiB, --max-connections.
TINE_TEST_TLS=1 exec bash "$(dirname "$0")/test_http_bodies.sh"
