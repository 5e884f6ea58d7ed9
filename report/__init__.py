"""The build report: collecting a build's figures from its output folder, charts, and the HTML page."""
