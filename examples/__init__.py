"""Examples of an app's tests written with graphpost.testing (run by `make test`)."""
