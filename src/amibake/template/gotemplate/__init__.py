"""A parser and evaluator of Go's text/template, for Packer's legacy-JSON ``{{ }}`` interpolation.

Packer renders every string of a JSON template with Go's ``text/template`` and the function set of
``packer-plugin-sdk/template/interpolate/funcs.go`` (plus the functions plugins add, which the
context brings). This module reimplements the part of that language templates use:

* text outside ``{{ }}`` copied verbatim; ``{{-`` / ``-}}`` trim the white space next to them
  (the marker needs a space: ``{{-3}}`` is the number -3); ``{{/* comments */}}``;
* pipelines ``a | b c`` (the piped value becomes the *last* argument), parenthesised
  sub-pipelines, ``$x := ...`` variables, and the operands ``.``, ``.Field.Sub``, ``$``,
  raw ``\\`strings\\``` and ``"Go strings"``, numbers, character constants, ``true``/``false``/``nil``;
* Packer's functions and Go's builtins (``print``, ``printf``, ``len``, ``index``, ``eq``...);
* the control actions ``{{if}}``/``{{else if}}``/``{{else}}``/``{{end}}``, ``{{range}}`` (lists,
  maps in key order, integers as in Go 1.24, ``$i, $v :=``, ``{{else}}`` when empty,
  ``{{break}}``/``{{continue}}``) and ``{{with}}``/``{{else with}}``, with Go's truth (false, 0,
  nil, a missing key and empty strings/lists/maps are false) and variable scoping (a variable
  lives until the ``{{end}}`` of the block that declares it).

The named templates ``define``/``template``/``block`` are not evaluated: they are reported as an
"unsupported action" (a Packer template is one string; none of the corpus uses them). The Go 1.18+
``break``/``continue``, Go 1.23 ``else with`` and Go 1.24 range over an integer are accepted,
as current Packer does; Packer 1.6.6 (Go 1.15) rejected them.

Error messages follow Go's (``template: root:1: function "x" not defined``,
``template: root:1:3: executing "root" at <user>: wrong number of args for user: want 1 got 0``)
because Packer prints them unchanged.

Lexer, parser and evaluator follow ``src/text/template/parse/{lex,parse}.go`` and
``src/text/template/exec.go`` of Go; each Packer function follows its Go original.

Modules: :mod:`.lexer` (tokens and Go literals), :mod:`.nodes` (the parse tree), :mod:`.parser`,
:mod:`.executor` (rendering and static inspection), :mod:`.functions` (Packer's functions and Go's
builtins), :mod:`.goformat` (Go's formatting of values, ``Sprintf``) and :mod:`.context` (what a
template sees, and the errors). The public face is :mod:`amibake.template.interpolate`.
"""
