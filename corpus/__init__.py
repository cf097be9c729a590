"""The notes and how they are read into sections: markdown file -> sections -> chunks."""
