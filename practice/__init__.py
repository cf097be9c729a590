"""Interview practice: questions from the notes, answers graded against them, and a review schedule."""
