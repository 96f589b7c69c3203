"""Replaces one marked section of docs/benchmarks.md, keeping the others (each benchmark owns one)."""

HEADER = "# Benchmarks\n\nEvery figure here was measured with the command shown beside it.\n\n"


def replace_section(doc_path, name, lines):
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    section = "\n".join([begin, *lines, end]) + "\n"
    try:
        doc = open(doc_path).read()
    except FileNotFoundError:
        doc = HEADER
    if begin in doc:
        a, b = doc.index(begin), doc.index(end) + len(end + "\n")
        doc = doc[:a] + section + doc[b:]
    else:
        doc += "\n" + section
    open(doc_path, "w").write(doc)
    print(section)
