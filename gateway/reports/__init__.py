"""Reports: issuing (fan-out, merge, sign, register), verifying, supersession and the PDF."""
