"""Reports: Rich tables for the terminal and matplotlib figures of CKA and robustness results."""
