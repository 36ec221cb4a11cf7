"""Reports: what results say, read from their files, as terminal text, an HTML page and figures.

    collect   read result files and folders; files that cannot be read are named, not fatal
    sections  what a report says about them, as plain data (facts, tables, notable layers)
    terminal  the sections printed with Rich; page  the sections as one self-contained HTML page
    figures   matplotlib figures (each function returns its Figure; `save_figure` writes it)
    tables    Rich tables the other commands print; make  `suite report` as one library call
    show      what each other command prints; layout  no number or file name cut, at any width
"""
