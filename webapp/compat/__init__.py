"""Every place Delta leans on a library's private API, one module per library.

Speed on the hot path (a signed-in GET costs ~1.1 M instructions above the stack floor; see the
README's Performance section) sometimes needs a library's internals: a method it calls on
itself, an attribute it keeps. Such a seam breaks silently when the library changes, so each
one lives here, opens with what it replaces, why and the measured gain, and has a test in
tests/test_compat.py that fails when the library stops calling it or changes what it relies on.
Nothing outside this package names a library's private attribute.

Each overridden library has an upper bound in setup.cfg and the versions CI tested are in
requirements.lock. To upgrade one: raise its bound, `make lock && make install`, run
tests/test_compat.py (a failure names the seam), then the suite and `make bench-instructions`.
Where a seam no longer pays, drop it for the library's public way.
"""
