#!/usr/bin/env bash
# test_http_framing.sh over HTTPS: the same byte-exact responses on one
# kept-alive TLS connection.
TINE_TEST_TLS=1 exec bash "$(dirname "$0")/test_http_framing.sh"
