"""formats/: the table written, read and drawn.

    export.py        ARPA (read by KenLM), JSON and CSV writers of any table: what it lists, at every order
    arpa.py          an ARPA file of characters → a sparse table (its histories; <unk> renormalized away)
    mix.py           tables interpolated over the union vocabulary; weights by EM on held-out names
    plots.py         the lecture's labelled heatmap
    explore.py       bigram explore: the run's tables gathered for one page (explore_page.html, .js, .css)
    tensorboard.py   what TensorBoard shows: curves beside the count model's line, samples, figures, hparams

Layer 5 (formats): imports the table, models, metrics, sampling and the layers below; never
bigram.runs, training or the CLI (they hand it a run or a table).
"""
