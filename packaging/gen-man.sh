#!/bin/sh
# gen-man.sh PROGRAM OUT SECTION-TITLE: writes a man page (roff) made from
# PROGRAM --help, and for tine from `tine help COMMAND` of every command.
# Run at build time by packaging/CMakeLists.txt; nothing to edit by hand.
set -eu
prog=$1 out=$2 title=$3
name=$(basename "$prog")
esc() { sed -e 's/\\/\\e/g' -e 's/^\./\\\&./' -e "s/^'/\\\\\&'/"; }
{
  printf '.TH %s 1 "" "tine" "%s"\n' "$(echo "$name" | tr '[:lower:]' '[:upper:]')" "$title"
  printf '.SH NAME\n%s \\- %s\n' "$name" "$title"
  printf '.SH SYNOPSIS\n.nf\n'
  "$prog" --help 2>&1 | sed -n '1p' | sed 's/^usage: //' | esc
  printf '.fi\n.SH DESCRIPTION\n.nf\n'
  "$prog" --help 2>&1 | sed '1d' | esc
  printf '.fi\n'
  if [ "$name" = tine ]; then
    printf '.SH COMMANDS\n'
    "$prog" --help 2>&1 | sed -n '/^Commands:/,/^$/p' | awk 'NR > 1 && NF { print $1 }' | while read -r cmd; do
      [ "$cmd" = help ] && continue
      printf '.SS %s\n.nf\n' "$cmd"
      "$prog" help "$cmd" 2>&1 | esc
      printf '.fi\n'
    done
  fi
  printf '.SH SEE ALSO\n'
  if [ "$name" = tine ]; then printf 'tined(1)\n'; else printf 'tine(1)\n'; fi
} >"$out.tmp"
mv "$out.tmp" "$out"
