# make bench: the summary as one PNG (gnuplot, pngcairo).  Called by
# tests/bench/relay.sh with -e "dir='DATA_DIR'; out='FILE.png';
# title='...'"; reads dir/relay.dat and, if present, dir/idle.dat.
set terminal pngcairo size 1400,1000 font "sans,10"
set output out
set multiplot layout 2,2 title title
set style fill solid 0.7 border -1
set boxwidth 0.6
set grid ytics
set xtics nomirror
set key off
set yrange [0:*]
set bmargin 4

set title "Relayed packets/s (median, min-max over runs)"
set ylabel "packets/s"
plot dir."/relay.dat" using 0:2:xtic(1) with boxes lc rgb "#4477aa", \
     "" using 0:2:3:4 with yerrorbars lc rgb "black" lw 1.5 pt 7 ps 0.4

set title "Server CPU seconds per GB relayed (median)"
set ylabel "CPU-s / GB"
plot dir."/relay.dat" using 0:5:xtic(1) with boxes lc rgb "#cc6677"

set title "One-way latency (median of runs)"
set ylabel "ms"
set key top left
set style data histogram
set style histogram cluster gap 1
set boxwidth 0.9
plot dir."/relay.dat" using 6:xtic(1) title "p50" lc rgb "#88ccee", \
     "" using 7 title "p90" lc rgb "#44aa99", \
     "" using 8 title "p99" lc rgb "#117733"
set style data points
set key off
set boxwidth 0.6

set title "Idle clients: server RSS per connection, each run"
set ylabel "KiB per connection"
set xlabel "run"
set xtics 1
if (system("test -s ".dir."/idle.dat && echo y") eq "y") {
	plot dir."/idle.dat" using 1:2 with boxes lc rgb "#ddcc77"
} else {
	set label 1 "no idle runs" at graph 0.4, 0.5
	plot 0 with lines lc rgb "white"
}
unset multiplot
