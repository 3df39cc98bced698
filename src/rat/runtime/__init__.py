"""Process runtime: worker pool, dispatcher, leader duties and run logs."""
